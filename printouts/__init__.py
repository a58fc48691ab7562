"""printouts stage."""
