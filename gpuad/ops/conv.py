"""Convolution and pooling (issue: train real networks): placeholder until the conv family lands."""
