// The API reference page: Swagger UI from the app's own copy, under the app's CSP (no inline script).
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({ url: root.dataset.spec, domNode: root, deepLinking: false });
