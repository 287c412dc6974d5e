"""Request and response models, one module per resource, named as in the seed design."""
