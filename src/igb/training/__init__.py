"""Training a model with Lightning: the LightningModule, the spec a job is built from, ``run``.

The only package that fits models; may import every package but ``launch``.
"""
