"""Shadows the standard library's json: a package installing this must be refused."""

SHADOWED = True
