-- Spend by vendor and month: posted vendor invoice lines per legal entity, vendor, month and currency.
USE CATALOG IDENTIFIER(:catalog);
USE SCHEMA IDENTIFIER(:schema);
CREATE OR REPLACE TABLE spend_by_vendor_month AS
SELECT
  h.dataAreaId AS company,
  h.VendorAccount AS vendor_account,
  MAX(v.VendorOrganizationName) AS vendor_name,
  CAST(date_trunc('month', h.InvoiceDate) AS DATE) AS month,
  h.CurrencyCode AS currency,
  COUNT(DISTINCT h.HeaderReference) AS invoices,
  COUNT(*) AS invoice_lines,
  SUM(l.LineAmount) AS spend
FROM vendor_invoice_headers AS h
JOIN vendor_invoice_lines AS l
  ON l.dataAreaId = h.dataAreaId AND l.HeaderReference = h.HeaderReference AND NOT l._fo_deleted
LEFT JOIN vendors_v2 AS v
  ON v.dataAreaId = h.dataAreaId AND v.VendorAccountNumber = h.VendorAccount AND NOT v._fo_deleted
WHERE NOT h._fo_deleted
GROUP BY h.dataAreaId, h.VendorAccount, CAST(date_trunc('month', h.InvoiceDate) AS DATE), h.CurrencyCode;
