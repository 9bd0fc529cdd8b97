"""Quarry: a serverless RAG platform whose domain runs the same in AWS Lambda and on one laptop."""

__all__ = ["__version__"]
__version__ = "0.1.0"
