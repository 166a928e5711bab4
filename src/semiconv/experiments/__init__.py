"""Small experiments that reproduce the paper's synthetic evidence."""
