"""rxcrm: a CRM for continuing-education and admissions offices."""
