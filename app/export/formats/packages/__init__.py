"""Training packages for the four MagicAnime tasks: per subset, per shot, the files a training
script reads (videos, arrays, audio), each package with a manifest and a README."""
