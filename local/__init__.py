"""The local environment: Temporal's dev server, moto as AWS, the sample game service, a worker."""
