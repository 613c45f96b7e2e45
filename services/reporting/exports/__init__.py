"""Export formats of the budget report: terminal table, CSV, XLSX (native charts), IATI 2.03 XML, 360Giving JSON.

Every exporter is a pure function of a `BudgetReport` (plus explicit parameters such as a generation time or a
schema path): no nameko, no database, no clock unless passed in.
"""
