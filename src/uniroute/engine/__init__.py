"""The routing engine: embedders, cluster maps, profiles, router and state.

Pure numpy / scikit-learn: nothing here imports an LLM SDK.
"""
