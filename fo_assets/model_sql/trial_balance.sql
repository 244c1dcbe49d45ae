-- Trial balance by legal entity, main account and financial dimension, per posting layer.
USE CATALOG IDENTIFIER(:catalog);
USE SCHEMA IDENTIFIER(:schema);
CREATE OR REPLACE TABLE trial_balance AS
SELECT
  -- A GL line's legal entity is its voucher's (derived when landed); the posting layer is the voucher's.
  g.dataAreaId AS company,
  COALESCE(a.MainAccountId, g.LedgerAccount_MainAccount) AS main_account,
  a.Name AS main_account_name,
  a.MainAccountType AS main_account_type,
  g.LedgerAccount_BusinessUnit AS business_unit,
  g.LedgerAccount_Department AS department,
  g.LedgerAccount_CostCenter AS cost_center,
  h.PostingLayer AS posting_layer,
  SUM(CASE WHEN g.IsCredit = 'Yes' THEN 0 ELSE g.AccountingCurrencyAmount END) AS debit,
  SUM(CASE WHEN g.IsCredit = 'Yes' THEN g.AccountingCurrencyAmount ELSE 0 END) AS credit,
  SUM(g.AccountingCurrencyAmount) AS balance,
  COUNT(*) AS entries
FROM general_journal_account_entry_bi_entities AS g
JOIN general_journal_entry_bi_entities AS h ON h.SourceKey = g.GeneralJournalEntry AND NOT h._fo_deleted
-- GL lines point at their main account by RecId (MainAccounts.MainAccountRecId).
LEFT JOIN main_accounts AS a ON a.MainAccountRecId = g.MainAccount AND NOT a._fo_deleted
WHERE NOT g._fo_deleted
GROUP BY g.dataAreaId, COALESCE(a.MainAccountId, g.LedgerAccount_MainAccount), a.Name, a.MainAccountType,
         g.LedgerAccount_BusinessUnit, g.LedgerAccount_Department, g.LedgerAccount_CostCenter, h.PostingLayer;
