"""The 20 enums of the schema, as Python lists: the contracts validate against these, and a test proves they
are the same labels, in the same order, as the SQL enums in 01_extensions_and_enums.sql."""

AGENT_STATUS = ["development", "testing", "active", "maintenance", "deprecated", "archived"]
AGENT_TYPE = ["specialist", "orchestrator", "synthesizer", "validator", "facilitator", "analyst", "researcher", "strategist"]
VALIDATION_STATUS = ["pending", "in_review", "approved", "rejected", "requires_update"]
DOMAIN_EXPERTISE = ["medical", "regulatory", "legal", "financial", "business", "technical", "commercial",
                    "market_access", "clinical", "manufacturing", "quality", "research", "general"]
DATA_CLASSIFICATION = ["public", "internal", "confidential", "restricted", "phi"]
FUNCTIONAL_AREA_TYPE = ["Commercial", "Medical Affairs", "Market Access", "Clinical", "Regulatory", "R&D",
                        "Manufacturing", "Quality", "Operations", "IT/Digital", "Legal", "Finance", "HR",
                        "Business Development"]
JOB_CATEGORY_TYPE = ["strategic", "operational", "tactical", "administrative", "analytical", "collaborative",
                     "creative", "technical"]
FREQUENCY_TYPE = ["daily", "weekly", "monthly", "quarterly", "yearly", "as_needed"]
COMPLEXITY_TYPE = ["simple", "moderate", "complex", "expert"]
DECISION_TYPE = ["routine", "tactical", "strategic", "critical"]
JTBD_STATUS = ["draft", "active", "deprecated", "archived"]
TENANT_STATUS = ["trial", "active", "suspended", "cancelled", "churned"]
TENANT_TIER = ["free", "starter", "professional", "enterprise", "enterprise_plus"]
TENANT_ROLE = ["owner", "admin", "manager", "member", "guest", "viewer"]
TENANT_LEVEL = ["platform", "solution_provider", "enterprise_client", "partner_org", "trial_tenant"]
PROMPT_ROLE_TYPE = ["system", "context", "instruction", "example", "panel_orchestration", "analysis", "synthesis"]
VISIBILITY_LEVEL = ["private", "tenant", "subtenant", "organization", "public"]
APPROVAL_STATUS = ["draft", "pending", "in_review", "approved", "rejected"]
CONVERSATION_MODE = ["expert_consultation", "panel_discussion", "ask_panel"]
MESSAGE_ROLE = ["user", "assistant", "system", "agent", "panel_moderator", "facilitator"]

SQL_ENUMS: dict[str, list[str]] = {
    "agent_status": AGENT_STATUS, "agent_type": AGENT_TYPE, "validation_status": VALIDATION_STATUS,
    "domain_expertise": DOMAIN_EXPERTISE, "data_classification": DATA_CLASSIFICATION,
    "functional_area_type": FUNCTIONAL_AREA_TYPE, "job_category_type": JOB_CATEGORY_TYPE,
    "frequency_type": FREQUENCY_TYPE, "complexity_type": COMPLEXITY_TYPE, "decision_type": DECISION_TYPE,
    "jtbd_status": JTBD_STATUS, "tenant_status": TENANT_STATUS, "tenant_tier": TENANT_TIER,
    "tenant_role": TENANT_ROLE, "tenant_level": TENANT_LEVEL, "prompt_role_type": PROMPT_ROLE_TYPE,
    "visibility_level": VISIBILITY_LEVEL, "approval_status": APPROVAL_STATUS,
    "conversation_mode": CONVERSATION_MODE, "message_role": MESSAGE_ROLE,
}

SENIORITY_LEVEL = ["entry", "mid", "senior", "lead", "head", "executive"]
