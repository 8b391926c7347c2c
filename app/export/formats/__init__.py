"""Pure export formats: each module turns :class:`~app.export.formats.bundle.ClipBundle`
objects (one clip's approved annotation, already read from the database) into files.

No module here touches the database; the export service reads clips one at a time and feeds
every selected writer, so a snapshot of any size is written in constant memory.
"""
