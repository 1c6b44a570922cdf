"""Fuzz targets for the normalizers and the envelope and payload decoders (run by `make fuzz`)."""
