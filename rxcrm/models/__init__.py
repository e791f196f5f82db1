"""Domain model (SQLModel tables). Import from here; no Reflex below this layer."""
from sqlmodel import SQLModel

from .activity import Activity, Comment, Notification, StageHistory, TimelineEvent
from .audit import AuditRecord
from .changes import ChangeRecord
from .base import COMPANY, CONTACT, DEAL, ENTITY_KINDS, LEAD, utcnow
from .crm import Communication, Company, Contact, Deal, DealProduct, Lead, Product
from .imports import ExternalRef, ImportItem, ImportJob, ImportMapping, ImportReject
from .integration import IntakeEvent, IntegrationToken
from .merge import MergeRecord
from .org import Department, Role, RolePermission, User, UserSession
from .pipeline import AutomationRule, CustomField, Pipeline, Stage
from .rest import RestEventBinding, RestOutbox, RestWebhook
from .views import ColumnSet, FilterPreset, PresetRoleDefault, UserPageSetting

metadata = SQLModel.metadata

__all__ = [
    "Activity", "AuditRecord", "AutomationRule", "COMPANY", "CONTACT", "ChangeRecord", "ColumnSet", "Comment", "Communication",
    "Company", "Contact", "CustomField", "DEAL", "Deal", "DealProduct", "Department",
    "ENTITY_KINDS", "ExternalRef", "FilterPreset", "ImportItem", "ImportJob", "ImportMapping", "ImportReject", "IntakeEvent", "IntegrationToken", "LEAD", "Lead", "MergeRecord", "Notification",
    "Pipeline", "PresetRoleDefault", "Product", "RestEventBinding", "RestOutbox", "RestWebhook",
    "Role", "RolePermission", "Stage", "StageHistory", "TimelineEvent", "User",
    "UserPageSetting", "UserSession", "metadata", "utcnow",
]
