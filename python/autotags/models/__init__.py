"""Model management: which models exist (the catalogue, built-in and the user's), where
their files come from (local folders, the package index, mirrors), verifying and
converting them to OpenVINO IR, compiling them for a device, and the user's own models
(added files, INT8 copies). Nothing here reads photos or knows about tags."""
