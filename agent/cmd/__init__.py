"""Console-script entry points."""

import warnings

# oslo.messaging pulls in oslo.service's eventlet backend at import time, which warns on every
# start although Kiln runs on threads and never uses eventlet: keep operators' terminals clean.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
