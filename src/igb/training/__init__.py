"""Training a model with Lightning: the LightningModule and ``run(cfg)``.

The only package that fits models; may import every package but ``launch``.
"""
