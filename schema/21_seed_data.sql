-- 21 · Seed data: the 5-level tenant hierarchy, 6 industries, 5 solutions, 14 org functions, 4 services.
--
-- Decisions:
-- * Levels 0–2 are the seed's rows; level 3 (a CRO partner of Acme) and level 4 (Acme's oncology pilot team)
--   complete the hierarchy. contact_email / contact_name are supplied because the table requires them.
-- * Solutions belong to the platform tenant and are public in the marketplace; the solution × industry
--   matrix is not seeded here: it is loaded from raw/solution_industry_matrix.xlsx.
-- * Every insert is ON CONFLICT DO NOTHING on the natural key: re-running inserts nothing new and never
--   overwrites what an operator changed since.

insert into tenants (id, parent_tenant_id, root_tenant_id, name, slug, tenant_level, hierarchy_depth, tenant_path,
                     contact_email, contact_name, tier, status)
values
    ('00000000-0000-0000-0000-000000000001', null, null,
     'VITAL.expert Platform', 'vital-platform', 'platform', 0,
     '00000000_0000_0000_0000_000000000001',
     'platform@vital.expert', 'VITAL.expert Platform Team', 'enterprise_plus', 'active'),
    ('11111111-1111-1111-1111-111111111111', '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001',
     'Pharma Solutions Lab', 'pharma-solutions', 'solution_provider', 1,
     '00000000_0000_0000_0000_000000000001.11111111_1111_1111_1111_111111111111',
     'solutions@vital.expert', 'Pharma Solutions Lab', 'enterprise', 'active'),
    ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', '00000000-0000-0000-0000-000000000001',
     'Acme Pharmaceuticals', 'acme-pharma', 'enterprise_client', 2,
     '00000000_0000_0000_0000_000000000001.11111111_1111_1111_1111_111111111111.22222222_2222_2222_2222_222222222222',
     'it-admin@acme-pharma.example', 'Acme Pharmaceuticals IT', 'enterprise', 'active'),
    ('33333333-3333-3333-3333-333333333333', '22222222-2222-2222-2222-222222222222', '00000000-0000-0000-0000-000000000001',
     'Meridian Clinical Research (Acme CRO partner)', 'acme-cro-partner', 'partner_org', 3,
     '00000000_0000_0000_0000_000000000001.11111111_1111_1111_1111_111111111111.22222222_2222_2222_2222_222222222222.33333333_3333_3333_3333_333333333333',
     'alliances@meridian-cr.example', 'Meridian Alliance Management', 'professional', 'active'),
    ('44444444-4444-4444-4444-444444444444', '33333333-3333-3333-3333-333333333333', '00000000-0000-0000-0000-000000000001',
     'Meridian Oncology Pilot Team', 'meridian-oncology-pilot', 'trial_tenant', 4,
     '00000000_0000_0000_0000_000000000001.11111111_1111_1111_1111_111111111111.22222222_2222_2222_2222_222222222222.33333333_3333_3333_3333_333333333333.44444444_4444_4444_4444_444444444444',
     'pilot-lead@meridian-cr.example', 'Oncology Pilot Lead', 'starter', 'trial')
on conflict (slug) do nothing;

insert into industries (code, name, short_name, description, display_order) values
    ('pharmaceuticals', 'Pharmaceutical', 'Phrm', 'Research-based and generic medicines manufacturers', 1),
    ('biotechnology', 'Biotechnology', 'Btch', 'Biologics, cell and gene therapy, platform biotechs', 2),
    ('medical_devices', 'Medical Devices', 'MedD', 'Devices, diagnostics and combination products', 3),
    ('healthcare_payers', 'Healthcare Payers', 'Payers', 'Insurers, HTA bodies and integrated payer organisations', 4),
    ('digital_health', 'Digital Health', 'Digital', 'Digital therapeutics, health apps and data platforms', 5),
    ('healthcare_consulting', 'Healthcare Consulting', 'Consult', 'Life-science strategy, HEOR and commercial consultancies', 6)
on conflict (code) do nothing;

insert into solutions (owner_tenant_id, name, slug, code, description, category, solution_type, price_model,
                       is_published, visibility, marketplace_tier)
values
    ('00000000-0000-0000-0000-000000000001', 'Launch Excellence', 'launch-excellence', 'LAUNCH-EX',
     'End-to-end launch readiness: market shaping, launch sequencing, field readiness and early performance tracking.',
     'commercial', 'packaged', 'subscription', true, 'public', 'premium'),
    ('00000000-0000-0000-0000-000000000001', 'Brand Excellence', 'brand-excellence', 'BRAND-EX',
     'Brand planning, positioning, omnichannel engagement and lifecycle management for in-market brands.',
     'commercial', 'packaged', 'subscription', true, 'public', 'premium'),
    ('00000000-0000-0000-0000-000000000001', 'Strategic Foresight (PULSE)', 'strategic-foresight', 'PULSE',
     'Horizon scanning, competitive intelligence and scenario planning for portfolio and pipeline decisions.',
     'strategic', 'packaged', 'subscription', true, 'public', 'standard'),
    ('00000000-0000-0000-0000-000000000001', 'Commercial Excellence', 'commercial-excellence', 'COMM-EX',
     'Sales force effectiveness, key account management, pricing and contracting, and commercial analytics.',
     'commercial', 'packaged', 'subscription', true, 'public', 'standard'),
    ('00000000-0000-0000-0000-000000000001', 'Medical Excellence', 'medical-excellence', 'MED-EX',
     'Medical strategy, MSL excellence, evidence generation and scientific communication.',
     'medical', 'packaged', 'subscription', true, 'public', 'premium')
on conflict (owner_tenant_id, slug) do nothing;

insert into org_functions (name, code, description, primary_industries, display_order) values
    ('Commercial', 'COMM', 'Sales, Marketing, Market Access', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 1),
    ('Medical Affairs', 'MA', 'MSL, Medical Communications, Evidence Generation', array['pharmaceuticals', 'biotechnology'], 2),
    ('Market Access', 'HEOR', 'HEOR, Payer Relations, Pricing & Reimbursement', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 3),
    ('Clinical', 'CLIN', 'Clinical Trials, Clinical Operations', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 4),
    ('Regulatory', 'REG', 'Regulatory Affairs, Compliance', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 5),
    ('Research & Development', 'RND', 'Drug Discovery, R&D', array['pharmaceuticals', 'biotechnology'], 6),
    ('Manufacturing', 'MFG', 'CMC, Manufacturing Operations', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 7),
    ('Quality', 'QA', 'Quality Assurance, Quality Control', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 8),
    ('Operations', 'OPS', 'Supply Chain, Operations', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 9),
    ('IT/Digital', 'IT', 'IT, Digital Transformation', array['pharmaceuticals', 'biotechnology', 'medical_devices', 'digital_health'], 10),
    ('Legal', 'LEGAL', 'Legal, IP', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 11),
    ('Finance', 'FIN', 'Finance, Accounting', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 12),
    ('HR', 'HR', 'Human Resources, Talent', array['pharmaceuticals', 'biotechnology', 'medical_devices'], 13),
    ('Business Development', 'BD', 'Partnerships, M&A, Licensing', array['pharmaceuticals', 'biotechnology'], 14)
on conflict (code) do nothing;

insert into services_registry (service_name, service_code, display_name, description, service_category) values
    ('ask_expert', 'AE', 'Ask Expert', '1:1 AI consultant conversations', 'conversation'),
    ('ask_panel', 'AP', 'Ask Panel', 'Multi-agent panel discussions', 'conversation'),
    ('workflows', 'WF', 'Workflows', 'Automated multi-step processes', 'execution'),
    ('solutions', 'SOL', 'Solutions Marketplace', 'Packaged solution offerings', 'marketplace')
on conflict (service_name) do nothing;
