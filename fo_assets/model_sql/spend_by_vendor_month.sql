-- Spend by vendor and month: posted vendor invoice lines per legal entity, vendor, month and currency.
USE CATALOG IDENTIFIER(:catalog);
USE SCHEMA IDENTIFIER(:schema);
CREATE OR REPLACE TABLE spend_by_vendor_month AS
SELECT
  h.dataAreaId AS company,
  h.InvoiceAccount AS vendor_account,
  MAX(v.VendorOrganizationName) AS vendor_name,
  CAST(date_trunc('month', h.InvoiceDate) AS DATE) AS month,
  h.CurrencyCode AS currency,
  COUNT(DISTINCT h.SourceKey) AS invoices,
  COUNT(*) AS invoice_lines,
  SUM(l.LineAmount) AS spend
FROM vend_invoice_jour_bi_entities AS h
JOIN vend_invoice_trans_bi_entities AS l
  -- F&O's relation between posted invoice lines and their header (VendInvoiceTrans -> VendInvoiceJour).
  ON l.dataAreaId = h.dataAreaId AND l.InvoiceId = h.InvoiceId AND l.InvoiceDate = h.InvoiceDate
  AND l.PurchID IS NOT DISTINCT FROM h.PurchId
  AND l.numberSequenceGroup IS NOT DISTINCT FROM h.numberSequenceGroup
  AND l.InternalInvoiceId IS NOT DISTINCT FROM h.InternalInvoiceId
  AND NOT l._fo_deleted
LEFT JOIN vendors_v2 AS v
  ON v.dataAreaId = h.dataAreaId AND v.VendorAccountNumber = h.InvoiceAccount AND NOT v._fo_deleted
WHERE NOT h._fo_deleted
GROUP BY h.dataAreaId, h.InvoiceAccount, CAST(date_trunc('month', h.InvoiceDate) AS DATE), h.CurrencyCode;
