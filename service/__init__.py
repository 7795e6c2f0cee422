"""commentmod's web service: the Flask app and everything inference needs.

The app factory lives in :mod:`service.app`; this package's ``__init__`` stays
free of Flask so that ``training`` can import the registry and store modules
without pulling in the web stack.
"""
