"""`autotags serve`: a local web page over the tag store, to see what was found (every
box drawn on its photo) and put it right, one photo or many at a time.

Needs the ``web`` extra: ``pip install 'autotags[web]'`` (Starlette, uvicorn, Jinja2).
"""
