"""Networks of the paper's three families: VGG (classification), residual FCN (segmentation),
Deep Speech (speech)."""
from modules.networks.deepspeech import DeepSpeech
from modules.networks.fcn import ResidualFCN
from modules.networks.vgg import VGG

__all__ = ["VGG", "ResidualFCN", "DeepSpeech"]
