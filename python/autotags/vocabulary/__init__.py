"""The vocabulary: what tags mean across models (categories above labels, synonyms and
alternative spellings), shared by search and by the writers in :mod:`autotags.outputs`."""
