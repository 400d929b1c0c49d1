"""Ingest from production gear: RTMP and SRT listeners."""
