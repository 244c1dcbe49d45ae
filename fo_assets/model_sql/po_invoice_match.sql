-- Purchase order to invoice match: what was ordered against what was invoiced (posted), per purchase order.
USE CATALOG IDENTIFIER(:catalog);
USE SCHEMA IDENTIFIER(:schema);
CREATE OR REPLACE TABLE po_invoice_match AS
WITH ordered AS (
  SELECT h.dataAreaId, h.PurchaseOrderNumber, h.OrderVendorAccountNumber, h.CurrencyCode,
         h.PurchaseOrderStatus, h.AccountingDate, COALESCE(SUM(l.LineAmount), 0) AS ordered_amount
  FROM purchase_order_headers_v2 AS h
  LEFT JOIN purchase_order_lines_v2 AS l
    ON l.dataAreaId = h.dataAreaId AND l.PurchaseOrderNumber = h.PurchaseOrderNumber AND NOT l._fo_deleted
  WHERE NOT h._fo_deleted
  GROUP BY h.dataAreaId, h.PurchaseOrderNumber, h.OrderVendorAccountNumber, h.CurrencyCode,
           h.PurchaseOrderStatus, h.AccountingDate
),
invoiced AS (
  -- Posted invoice lines name the purchase order they invoice (PurchID); amounts before tax, as ordered.
  SELECT dataAreaId, PurchID AS PurchaseOrderNumber, COUNT(DISTINCT InvoiceId) AS invoices,
         SUM(LineAmount) AS invoiced_amount
  FROM vend_invoice_trans_bi_entities
  WHERE NOT _fo_deleted AND PurchID IS NOT NULL AND PurchID <> ''
  GROUP BY dataAreaId, PurchID
)
SELECT
  o.dataAreaId AS company,
  o.PurchaseOrderNumber AS purchase_order,
  o.OrderVendorAccountNumber AS vendor_account,
  o.CurrencyCode AS currency,
  o.PurchaseOrderStatus AS status,
  o.AccountingDate AS accounting_date,
  o.ordered_amount,
  COALESCE(i.invoiced_amount, 0) AS invoiced_amount,
  o.ordered_amount - COALESCE(i.invoiced_amount, 0) AS open_amount,
  COALESCE(i.invoices, 0) AS invoices,
  CASE
    WHEN i.invoices IS NULL THEN 'not_invoiced'
    WHEN i.invoiced_amount = o.ordered_amount THEN 'matched'
    WHEN i.invoiced_amount < o.ordered_amount THEN 'partially_invoiced'
    ELSE 'over_invoiced'
  END AS match_status
FROM ordered AS o
LEFT JOIN invoiced AS i
  ON i.dataAreaId = o.dataAreaId AND i.PurchaseOrderNumber = o.PurchaseOrderNumber;
