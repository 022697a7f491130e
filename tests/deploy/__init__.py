"""Tests of the install paths' files: the Dockerfile, deploy/compose.yaml, the systemd unit."""
