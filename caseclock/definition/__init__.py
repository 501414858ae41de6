"""Process definitions: a versioned, validated file format interpreted by the process core."""
