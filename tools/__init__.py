"""The repository's tools (make locks, make docs), importable as jhub_tools by the tests."""
