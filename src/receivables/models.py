"""Every table model, imported once: Alembic's target metadata and the mapper registry."""

from receivables.auctions.models import Bid, Listing
from receivables.auth.models import ApiClient, LoginThrottle, RefreshToken
from receivables.deals.models import Deal
from receivables.events.models import AuditChainHead, AuditRecord, EventRecipient
from receivables.kit.db import metadata
from receivables.kit.idempotency import IdempotencyRecord
from receivables.ledger.models import Account, JournalEntry, Posting
from receivables.organizations.models import Organization, User
from receivables.receivables.models import Receivable
from receivables.stats.models import SeriousArrearsMember
from receivables.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Account",
    "ApiClient",
    "AuditChainHead",
    "AuditRecord",
    "Bid",
    "Deal",
    "EventRecipient",
    "IdempotencyRecord",
    "JournalEntry",
    "Listing",
    "LoginThrottle",
    "Organization",
    "Posting",
    "Receivable",
    "RefreshToken",
    "SeriousArrearsMember",
    "User",
    "metadata",
]
