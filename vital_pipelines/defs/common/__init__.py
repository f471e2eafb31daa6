"""Resources and policies shared by every domain."""
