"""The pharma organisation the sample workbooks describe: functions, departments, roles, responsibilities.

Real department and role names a life-sciences professional would recognise. The generator builds every
workbook from this catalogue; nothing else reads it.
"""

from __future__ import annotations

# function code -> [(department code, department name, [(role code, role name, seniority)])]
ORGANISATION: dict[str, list[tuple[str, str, list[tuple[str, str, str]]]]] = {
    "COMM": [
        ("COMM-MKT", "Brand Marketing", [("BRAND-MGR", "Brand Manager", "mid"), ("SR-BRAND-MGR", "Senior Brand Manager", "senior"), ("BRAND-DIR", "Brand Director", "head")]),
        ("COMM-SALES", "Field Sales", [("SALES-REP", "Pharmaceutical Sales Representative", "entry"), ("KAM", "Key Account Manager", "senior"), ("REG-SALES-DIR", "Regional Sales Director", "head")]),
        ("COMM-CX", "Customer Engagement & Omnichannel", [("OMNI-MGR", "Omnichannel Manager", "mid"), ("CRM-LEAD", "CRM Lead", "lead")]),
        ("COMM-INS", "Commercial Insights & Analytics", [("FORECAST-ANL", "Forecasting Analyst", "mid"), ("INSIGHTS-MGR", "Market Insights Manager", "senior")]),
    ],
    "MA": [
        ("MA-MSL", "Medical Science Liaison", [("MSL", "Medical Science Liaison", "mid"), ("SR-MSL", "Senior MSL", "senior"), ("MSL-MGR", "MSL Team Manager", "lead")]),
        ("MA-MEDINFO", "Medical Information", [("MED-INFO-SPEC", "Medical Information Specialist", "mid"), ("MED-INFO-MGR", "Medical Information Manager", "lead")]),
        ("MA-MEDCOMMS", "Medical Communications & Publications", [("PUB-MGR", "Publications Manager", "mid"), ("MED-WRITER", "Medical Writer", "mid")]),
        ("MA-EVGEN", "Evidence Generation", [("RWE-SCI", "Real-World Evidence Scientist", "senior"), ("MED-ADVISOR", "Medical Advisor", "senior"), ("MED-DIR", "Medical Director", "head")]),
    ],
    "HEOR": [
        ("HEOR-HE", "Health Economics", [("HE-MODELLER", "Health Economic Modeller", "mid"), ("HEOR-MGR", "HEOR Manager", "senior")]),
        ("HEOR-PRICING", "Pricing & Reimbursement", [("PRICING-MGR", "Pricing Manager", "senior"), ("REIMB-SPEC", "Reimbursement Specialist", "mid")]),
        ("HEOR-PAYER", "Payer Relations", [("PAYER-ACCT-DIR", "Payer Account Director", "head"), ("VALUE-LIAISON", "Value & Access Liaison", "mid")]),
    ],
    "CLIN": [
        ("CLIN-OPS", "Clinical Operations", [("CRA", "Clinical Research Associate", "entry"), ("CTM", "Clinical Trial Manager", "senior"), ("CLIN-OPS-DIR", "Clinical Operations Director", "head")]),
        ("CLIN-DEV", "Clinical Development", [("CLIN-SCI", "Clinical Scientist", "mid"), ("MED-MONITOR", "Medical Monitor", "senior")]),
        ("CLIN-DATA", "Clinical Data Management & Biostatistics", [("CDM", "Clinical Data Manager", "mid"), ("BIOSTAT", "Biostatistician", "senior")]),
    ],
    "REG": [
        ("REG-STRAT", "Regulatory Strategy", [("REG-STRATEGIST", "Regulatory Strategist", "senior"), ("GRL", "Global Regulatory Lead", "lead")]),
        ("REG-CMC", "Regulatory CMC", [("REG-CMC-SPEC", "Regulatory CMC Specialist", "mid")]),
        ("REG-OPS", "Regulatory Operations", [("SUBMISSION-MGR", "Submission Manager", "mid"), ("REG-PUBLISHER", "Regulatory Publisher", "entry")]),
        ("REG-LABEL", "Labelling & Promotional Review", [("LABEL-MGR", "Labelling Manager", "mid"), ("PROMO-REVIEWER", "Promotional Material Reviewer", "mid")]),
    ],
    "RND": [
        ("RND-DISC", "Drug Discovery", [("MED-CHEMIST", "Medicinal Chemist", "mid"), ("DISC-BIOLOGIST", "Discovery Biologist", "mid")]),
        ("RND-TRANS", "Translational Medicine", [("TRANS-SCI", "Translational Scientist", "senior"), ("BIOMARKER-LEAD", "Biomarker Lead", "lead")]),
        ("RND-PORTFOLIO", "Portfolio & Project Management", [("PROJ-LEADER", "Global Project Leader", "lead"), ("PORTFOLIO-ANL", "Portfolio Analyst", "mid")]),
    ],
    "MFG": [
        ("MFG-CMC", "CMC Development", [("PROCESS-ENG", "Process Development Engineer", "mid"), ("CMC-LEAD", "CMC Lead", "lead")]),
        ("MFG-OPS", "Manufacturing Operations", [("PROD-SUPERVISOR", "Production Supervisor", "mid"), ("SITE-HEAD", "Site Head", "executive")]),
    ],
    "QA": [
        ("QA-ASSURANCE", "Quality Assurance", [("QA-SPEC", "QA Specialist", "mid"), ("QP", "Qualified Person", "senior")]),
        ("QA-CONTROL", "Quality Control", [("QC-ANALYST", "QC Analyst", "entry"), ("QC-MGR", "QC Manager", "lead")]),
        ("QA-PV", "Pharmacovigilance", [("PV-SCI", "Pharmacovigilance Scientist", "mid"), ("QPPV", "EU QPPV", "head"), ("SIGNAL-LEAD", "Signal Management Lead", "lead")]),
    ],
    "OPS": [
        ("OPS-SUPPLY", "Supply Chain Planning", [("DEMAND-PLANNER", "Demand Planner", "mid"), ("SUPPLY-MGR", "Supply Chain Manager", "senior")]),
        ("OPS-DIST", "Distribution & Logistics", [("GDP-MGR", "GDP Logistics Manager", "mid")]),
    ],
    "IT": [
        ("IT-DATA", "Data & Analytics", [("DATA-ENG", "Data Engineer", "mid"), ("DATA-SCI", "Data Scientist", "senior"), ("CDO", "Chief Data Officer", "executive")]),
        ("IT-GXP", "GxP Systems & Validation", [("CSV-ENG", "Computer System Validation Engineer", "mid")]),
        ("IT-DIGITAL", "Digital Health Products", [("DIGITAL-PM", "Digital Product Manager", "senior")]),
    ],
    "LEGAL": [
        ("LEGAL-IP", "Intellectual Property", [("PATENT-ATTY", "Patent Attorney", "senior")]),
        ("LEGAL-COMPL", "Compliance & Ethics", [("COMPL-OFFICER", "Compliance Officer", "senior"), ("DPO", "Data Protection Officer", "lead")]),
    ],
    "FIN": [
        ("FIN-FPA", "Financial Planning & Analysis", [("FIN-ANALYST", "Financial Analyst", "mid"), ("FPA-DIR", "FP&A Director", "head")]),
        ("FIN-GTN", "Gross-to-Net & Revenue Management", [("GTN-ANALYST", "Gross-to-Net Analyst", "mid")]),
    ],
    "HR": [
        ("HR-TALENT", "Talent Acquisition", [("TALENT-PARTNER", "Talent Acquisition Partner", "mid")]),
        ("HR-LND", "Learning & Development", [("FIELD-TRAINER", "Field Force Trainer", "mid"), ("LND-LEAD", "L&D Lead", "lead")]),
    ],
    "BD": [
        ("BD-LICENSING", "Licensing & Alliances", [("ALLIANCE-MGR", "Alliance Manager", "senior"), ("BD-DIR", "Business Development Director", "head")]),
        ("BD-SEARCH", "Search & Evaluation", [("SE-ANALYST", "Search & Evaluation Analyst", "mid")]),
    ],
}

FUNCTIONS: dict[str, tuple[str, str, str]] = {
    "COMM": ("Commercial", "Sales, Marketing, Market Access", "#1F77B4"),
    "MA": ("Medical Affairs", "MSL, Medical Communications, Evidence Generation", "#2CA02C"),
    "HEOR": ("Market Access", "HEOR, Payer Relations, Pricing & Reimbursement", "#FF7F0E"),
    "CLIN": ("Clinical", "Clinical Trials, Clinical Operations", "#D62728"),
    "REG": ("Regulatory", "Regulatory Affairs, Compliance", "#9467BD"),
    "RND": ("Research & Development", "Drug Discovery, R&D", "#8C564B"),
    "MFG": ("Manufacturing", "CMC, Manufacturing Operations", "#E377C2"),
    "QA": ("Quality", "Quality Assurance, Quality Control", "#7F7F7F"),
    "OPS": ("Operations", "Supply Chain, Operations", "#BCBD22"),
    "IT": ("IT/Digital", "IT, Digital Transformation", "#17BECF"),
    "LEGAL": ("Legal", "Legal, IP", "#393B79"),
    "FIN": ("Finance", "Finance, Accounting", "#637939"),
    "HR": ("HR", "Human Resources, Talent", "#8C6D31"),
    "BD": ("Business Development", "Partnerships, M&A, Licensing", "#843C39"),
}

# functional_area_type labels (the JTBD enum) per function code.
FUNCTIONAL_AREA = {
    "COMM": "Commercial", "MA": "Medical Affairs", "HEOR": "Market Access", "CLIN": "Clinical",
    "REG": "Regulatory", "RND": "R&D", "MFG": "Manufacturing", "QA": "Quality", "OPS": "Operations",
    "IT": "IT/Digital", "LEGAL": "Legal", "FIN": "Finance", "HR": "HR", "BD": "Business Development",
}

DOMAIN_EXPERTISE = {
    "COMM": "commercial", "MA": "medical", "HEOR": "market_access", "CLIN": "clinical", "REG": "regulatory",
    "RND": "research", "MFG": "manufacturing", "QA": "quality", "OPS": "business", "IT": "technical",
    "LEGAL": "legal", "FIN": "financial", "HR": "business", "BD": "business",
}

# Per function: the work its people do (responsibilities, also the source of agent capabilities and JTBDs).
RESPONSIBILITIES: dict[str, list[tuple[str, str]]] = {
    "COMM": [("Brand planning", "Build the annual brand plan and tactical roadmap"), ("Market segmentation", "Segment prescribers and accounts by potential and behaviour"), ("Sales force targeting", "Set call plans and targeting for field teams"), ("Omnichannel orchestration", "Coordinate email, web and rep channels around the customer journey"), ("Sales forecasting", "Forecast demand and revenue by brand and region"), ("Launch readiness tracking", "Track launch readiness milestones across functions")],
    "MA": [("KOL engagement", "Plan and document scientific exchange with key opinion leaders"), ("Medical information response", "Answer unsolicited medical questions from healthcare professionals"), ("Advisory board management", "Run medical advisory boards and capture insights"), ("Publication planning", "Plan and track peer-reviewed publications and congress abstracts"), ("Medical insights synthesis", "Turn field medical insights into strategic recommendations"), ("Evidence gap analysis", "Identify evidence gaps and propose studies to fill them")],
    "HEOR": [("Cost-effectiveness modelling", "Build and adapt cost-effectiveness and budget impact models"), ("HTA dossier preparation", "Prepare health technology assessment submissions"), ("Value dossier development", "Maintain the global value dossier"), ("Payer negotiation support", "Prepare evidence and arguments for payer negotiations"), ("Pricing corridor analysis", "Analyse international reference pricing and launch sequence")],
    "CLIN": [("Site selection and feasibility", "Assess feasibility and select trial sites"), ("Protocol development", "Draft and review clinical study protocols"), ("Trial monitoring", "Monitor sites for GCP compliance and data quality"), ("Patient recruitment planning", "Plan recruitment and retention strategies"), ("Clinical study reporting", "Write clinical study reports"), ("Statistical analysis planning", "Write statistical analysis plans")],
    "REG": [("Regulatory strategy", "Define the regulatory pathway for each indication and region"), ("Health authority meetings", "Prepare briefing books and lead health authority meetings"), ("Dossier compilation", "Compile and publish eCTD submissions"), ("Labelling maintenance", "Maintain the company core data sheet and local labels"), ("Promotional review", "Review promotional material against the label and codes")],
    "RND": [("Target validation", "Validate biological targets for new programmes"), ("Lead optimisation", "Optimise lead compounds for potency and safety"), ("Biomarker strategy", "Define biomarkers for patient selection and response"), ("Portfolio prioritisation", "Prioritise programmes by value, risk and fit")],
    "MFG": [("Process validation", "Validate manufacturing processes"), ("Technology transfer", "Transfer processes between development and commercial sites"), ("Batch record review", "Review executed batch records")],
    "QA": [("Deviation management", "Investigate deviations and define CAPAs"), ("Batch release", "Certify and release batches"), ("Adverse event case processing", "Process individual case safety reports"), ("Signal detection", "Detect and evaluate safety signals"), ("Audit and inspection readiness", "Prepare for GMP and GVP inspections")],
    "OPS": [("Demand planning", "Plan demand and align supply"), ("Cold chain management", "Keep temperature-controlled distribution compliant"), ("Inventory optimisation", "Balance inventory against service levels")],
    "IT": [("Data platform engineering", "Build pipelines and data products"), ("Computer system validation", "Validate GxP computerised systems"), ("Analytics delivery", "Deliver dashboards and predictive models"), ("Digital product management", "Own the roadmap of digital health products")],
    "LEGAL": [("Patent strategy", "Protect inventions and manage patent lifecycle"), ("Compliance monitoring", "Monitor interactions with HCPs against codes of practice"), ("Data privacy assessment", "Run privacy impact assessments")],
    "FIN": [("Budget planning", "Plan and track functional budgets"), ("Gross-to-net forecasting", "Forecast rebates, discounts and net revenue"), ("Business case evaluation", "Evaluate investment business cases")],
    "HR": [("Field force recruitment", "Recruit sales and medical field teams"), ("Training curriculum design", "Design onboarding and product training"), ("Competency assessment", "Assess competencies and plan development")],
    "BD": [("Asset scouting", "Scout external assets and technologies"), ("Due diligence", "Run scientific and commercial due diligence"), ("Alliance governance", "Run joint steering committees with partners")],
}

THERAPEUTIC_AREAS = ["Oncology", "Immunology", "Cardiovascular", "Neuroscience", "Rare Diseases", "Respiratory",
                     "Infectious Diseases", "Metabolic Disease", "Ophthalmology", "Dermatology"]

FIRST_NAMES = ["Sarah", "James", "Priya", "Lukas", "Amelia", "Kenji", "Fatima", "Marco", "Elena", "David", "Aisha",
               "Tomás", "Hannah", "Wei", "Olivia", "Rahul", "Sofia", "Jonas", "Grace", "Mateo", "Chloe", "Yusuf",
               "Ingrid", "Samuel", "Nadia", "Felix", "Leila", "Patrick", "Mei", "Daniel"]
LAST_NAMES = ["Chen", "Okafor", "Müller", "Patel", "García", "Johansson", "Rossi", "Nakamura", "Dubois", "Kowalski",
              "O'Brien", "Haddad", "Fischer", "Singh", "Andersen", "Moreau", "Kim", "Costa", "Novak", "Walsh"]

GOALS = ["Shorten the time from data to decision", "Keep every interaction compliant", "Build trusted relationships with experts",
         "Demonstrate value to payers early", "Deliver the launch on time", "Reduce manual reporting work",
         "Generate evidence that changes practice", "Anticipate competitor moves", "Improve data quality at source"]
PAIN_POINTS = ["Information scattered across systems", "Slow medical-legal-regulatory review cycles", "Too little time with key customers",
               "Inconsistent data between regions", "Evidence requests arrive with short deadlines", "Manual consolidation of field insights",
               "Changing payer requirements", "Limited visibility of competitor activity"]
MOTIVATIONS = ["Patient impact", "Scientific rigour", "Recognition by peers", "Career progression", "Operational excellence",
               "Commercial success"]
TOOLS = ["Veeva CRM", "Veeva Vault", "Salesforce", "IQVIA data", "Power BI", "Excel", "Argus Safety", "Medidata Rave",
         "SAS", "R", "Tableau", "PubMed", "Microsoft Teams"]
