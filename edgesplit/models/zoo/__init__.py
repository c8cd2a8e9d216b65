"""The model zoo: importing this package registers every model (see `edgesplit.models.registry`)."""

from edgesplit.models.zoo import cnn, ir, resnet, torchvision_zoo  # noqa: F401
