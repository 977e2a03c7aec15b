"""Stage 1: ImageNet-style pretraining of the ResNet84 encoders."""
