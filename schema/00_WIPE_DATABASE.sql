-- 00 · Wipe: drops every table, enum and function the phase files create, and forgets what was applied.
--
-- The nuclear option. The migrations runner executes it only on an explicit rebuild
-- (`vital-pipelines schema --rebuild`), never as part of a normal apply. Extensions, the auth schema and the
-- Supabase roles stay: they are shared with whatever else lives in the database.

drop table if exists
    agent_departments, agent_functions, agent_knowledge, agent_prompts, agent_roles, agent_skills,
    agent_tools, agents, api_keys, artifacts, audit_log, capabilities, capability_jtbd_mapping,
    consultation_feedback, consultation_sessions, cost_allocation, data_retention_policies,
    deliverables, department_roles, domains, expert_consultations, expert_messages,
    function_departments, function_roles, industries, jobs_to_be_done, jtbd_personas,
    knowledge_chunks, knowledge_corpus, knowledge_lexicon, knowledge_sources, org_departments, org_functions, org_responsibilities,
    org_roles, panel_consensus, panel_discussions, panel_facilitator_configs, panel_members,
    panel_messages, panel_rounds, panel_templates, panel_votes, personas, pipeline_loads, prompts,
    quarantined_rows, role_responsibilities, service_role_audit, services_registry, skills,
    solution_agents, solution_industry_matrix, solution_installations, solution_knowledge,
    solution_prompt_suites, solution_prompts, solution_templates, solution_workflows, solutions,
    steps, strategic_priorities, subscription_usage_monthly, task_agents, task_executions,
    task_prerequisites, task_skills, task_tools, tasks, templates, tenant_members,
    tenant_organizations, tenant_usage_tracking, tenants, token_usage_consultations,
    token_usage_messages, token_usage_sessions, tools, user_profiles, vote_records, votes,
    workflow_approvals, workflow_execution_steps, workflow_executions, workflow_logs,
    workflow_step_connections, workflow_step_definitions, workflow_tasks, workflows
    cascade;

drop function if exists
    tenant_read_allowed(uuid), tenant_write_allowed(uuid), tenant_admin_allowed(uuid),
    content_read_allowed(uuid, visibility_level, uuid), set_updated_at(), tenant_path_label(uuid),
    maintain_tenant_hierarchy(), cascade_tenant_hierarchy(), tenant_ancestors(uuid), tenant_descendants(uuid),
    is_tenant_member_or_ancestor_admin(uuid), rollup_tenant_usage(date), rollup_subscription_usage(date)
    cascade;

drop schema if exists private cascade;

drop type if exists
    agent_status, agent_type, validation_status, domain_expertise, data_classification,
    functional_area_type, job_category_type, frequency_type, complexity_type, decision_type,
    jtbd_status, tenant_status, tenant_tier, tenant_role, tenant_level, prompt_role_type,
    visibility_level, approval_status, conversation_mode, message_role
    cascade;

delete from public.schema_migrations;
