from .broader_context_loss import BroaderContextLoss

__all__ = ["BroaderContextLoss"]
