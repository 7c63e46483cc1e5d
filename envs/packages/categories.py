"""A starter list of task categories for `agentkit envs synthesize --starter N` (one line each, as DeepSeek's
synthesizer took them: a domain in a few words)."""

STARTER_CATEGORIES = [
    "trip planning", "flight booking", "hotel reservations", "restaurant reservations", "car rental",
    "train schedules and tickets", "event ticketing", "conference scheduling", "meeting room booking",
    "personal calendar management", "email triage", "customer support tickets", "IT helpdesk", "bug tracking",
    "project task management", "sprint planning", "employee onboarding", "payroll", "expense reports",
    "vacation requests", "recruiting pipeline", "inventory management", "warehouse shipping", "order fulfilment",
    "returns and refunds", "e-commerce product catalogue", "price comparison", "grocery delivery",
    "recipe planning and nutrition", "fitness training plans", "medical appointment scheduling",
    "pharmacy prescriptions", "insurance claims", "personal banking", "budgeting", "stock portfolio tracking",
    "tax filing", "invoice management", "subscription billing", "real estate listings", "property maintenance",
    "library loans", "university course registration", "exam scheduling", "school grade book",
    "music playlist curation", "movie streaming catalogue", "podcast publishing", "news archive research",
    "social media moderation", "sports league standings", "fantasy sports drafts", "weather-based planning",
    "public transport routing", "parking permits", "city permits and licences", "utility billing",
    "energy usage monitoring", "fleet maintenance", "airline crew rostering", "clinical trial records",
    "lab sample tracking", "museum collections", "hotel housekeeping", "wedding planning", "pet adoption",
    "veterinary clinic", "charity donations", "volunteer scheduling", "cloud server inventory",
    "software release management", "access control and permissions", "data catalogue governance",
]
