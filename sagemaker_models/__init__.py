"""Inference code and serving configuration for Quarry's SageMaker endpoints (not part of the Lambda path)."""
