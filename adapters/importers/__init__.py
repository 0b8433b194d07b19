"""Readers of the files other systems exchange: e-invoices (Factur-X, UBL, CII) and bank
statements (camt.053, CFONB 120). See docs/import.md."""
