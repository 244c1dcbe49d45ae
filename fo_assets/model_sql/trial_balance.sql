-- Trial balance by legal entity, main account and financial dimension, per posting layer.
USE CATALOG IDENTIFIER(:catalog);
USE SCHEMA IDENTIFIER(:schema);
CREATE OR REPLACE TABLE trial_balance AS
WITH accounts AS (
  -- One name per main account id across charts of accounts.
  SELECT MainAccountId, MIN(Name) AS Name, MIN(MainAccountType) AS MainAccountType
  FROM main_accounts
  WHERE NOT _fo_deleted
  GROUP BY MainAccountId
)
SELECT
  g.DataArea AS company,
  g.LedgerAccount_MainAccount AS main_account,
  a.Name AS main_account_name,
  a.MainAccountType AS main_account_type,
  g.LedgerAccount_BusinessUnit AS business_unit,
  g.LedgerAccount_Department AS department,
  g.LedgerAccount_CostCenter AS cost_center,
  g.PostingLayer AS posting_layer,
  SUM(CASE WHEN g.IsCredit = 'Yes' THEN 0 ELSE g.AccountingCurrencyAmount END) AS debit,
  SUM(CASE WHEN g.IsCredit = 'Yes' THEN g.AccountingCurrencyAmount ELSE 0 END) AS credit,
  SUM(g.AccountingCurrencyAmount) AS balance,
  COUNT(*) AS entries
FROM general_journal_account_entries AS g
LEFT JOIN accounts AS a ON a.MainAccountId = g.LedgerAccount_MainAccount
WHERE NOT g._fo_deleted
GROUP BY g.DataArea, g.LedgerAccount_MainAccount, a.Name, a.MainAccountType, g.LedgerAccount_BusinessUnit,
         g.LedgerAccount_Department, g.LedgerAccount_CostCenter, g.PostingLayer;
