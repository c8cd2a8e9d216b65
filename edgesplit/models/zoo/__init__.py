"""The model zoo: importing this package registers every model (into `edgesplit.models.entries.MODELS`)."""

from edgesplit.models.zoo import cnn, ir, resnet, torchvision_zoo  # noqa: F401
