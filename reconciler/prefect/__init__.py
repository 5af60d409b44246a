"""The Prefect REST API: the client (one error boundary), the transport (retries), one adapter per major version.

Takes an API URL and key (or starts an embedded server); gives HTTP calls that raise this project's errors only.
"""
