"""One view across vendors: every vendor's curated usage as FOCUS charges (README "One view across vendors").

``columns`` (the FOCUS columns), ``branch`` (what a vendor's charges are made of), ``vendors`` (the registry
of each vendor's branches), ``view`` (the view's SQL) and ``queries`` (named queries). This file imports
nothing, so a vendor's ``focus.py`` can import ``focus.branch`` without a cycle.
"""
