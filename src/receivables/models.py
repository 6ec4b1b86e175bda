"""Every table model, imported once: Alembic's target metadata and the mapper registry."""

from receivables.auctions.models import Bid, Listing
from receivables.deals.models import Deal
from receivables.events.models import AuditRecord
from receivables.kit.db import metadata
from receivables.ledger.models import Account, JournalEntry, Posting
from receivables.organizations.models import Organization, User
from receivables.receivables.models import Receivable

__all__ = [
    "Account",
    "AuditRecord",
    "Bid",
    "Deal",
    "JournalEntry",
    "Listing",
    "Organization",
    "Posting",
    "Receivable",
    "User",
    "metadata",
]
