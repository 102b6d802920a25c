-- Churn A/B arms (issue 16): which arm served each churn score, so realised accuracy
-- (analytics.classification_accuracy, grain kind x target x as-of date x model version x arm) is scored by arm.
-- A user is in the arm of their workspace (core.arms.arm_of on the workspace id); rows scored before this
-- migration, and every row while A/B is off, are 'champion'.
alter table analytics.churn_predictions add column if not exists arm varchar(20) not null default 'champion';
