"""The methods, one per file, grouped by kind: detection, correction, pseudo_labeling, weighting."""
