"""The Annex III budget headings of the PRAG grant contract: the one list every service uses (proposals in calls, the
grant's budget in grants, event contracts, the EC budget report). Plain Python, importable anywhere.

Lines 1-6 are the direct headings (line 7 is their subtotal), 8 the contingency reserve, 10 the indirect costs; 9
(total direct costs) and 11 (total eligible costs) are derived, so they are not headings of their own.
"""
DIRECT_HEADINGS = (
    "human_resources", "travel", "equipment_supplies", "local_office", "other_costs_services", "other",
)
HEADINGS = DIRECT_HEADINGS + ("contingency", "indirect_costs")
HEADING_LABELS = {
    "human_resources": "1. Human resources",
    "travel": "2. Travel",
    "equipment_supplies": "3. Equipment and supplies",
    "local_office": "4. Local office",
    "other_costs_services": "5. Other costs, services",
    "other": "6. Other",
    "contingency": "8. Contingency reserve",
    "indirect_costs": "10. Indirect (administrative) costs",
}
