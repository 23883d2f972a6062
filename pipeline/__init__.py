"""Build stage: catalog folder -> precomputed recommendations.

Importing this package is cheap: TensorFlow, numpy and pandas are imported only inside
the functions that need them, so the static app can import `pipeline.precomputed`.
"""
