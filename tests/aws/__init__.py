"""AWS adapter tests (moto, botocore Stubber)."""
