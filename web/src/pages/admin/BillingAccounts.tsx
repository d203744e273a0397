import { useQuery } from '@tanstack/react-query';
import {
  Button,
  Card,
  Col,
  Descriptions,
  Empty,
  Form,
  Input,
  InputNumber,
  Modal,
  Popconfirm,
  Row,
  Select,
  Skeleton,
  Space,
  Statistic,
  Table,
  Tag,
  Typography,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useSearchParams } from 'react-router-dom';
import { api, type BillingAccountDetail, type BillingSettings, get, type Page, qs, type Tenant } from '../../api';
import { formatTime, PageTitle, QueryError, useAction } from '../../components';
import { money, parseDecimalMicros } from '../Billing';

/** A key that makes a retried top-up or credit a no-op (one per opened form). */
const idempotencyKey = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');

const STATUS_COLOR: Record<string, string> = { ok: 'green', notified: 'orange', restricted: 'red', suspended: 'red' };

function FundsModal({
  tenant,
  kind,
  currency,
  onClose,
}: {
  tenant: Tenant;
  kind: 'top-ups' | 'credits';
  currency: string;
  onClose: () => void;
}) {
  const { t } = useTranslation();
  const [form] = Form.useForm<{ amount: string; reference?: string }>();
  const [key] = useState(idempotencyKey);
  const add = useAction(
    (v: { amount: string; reference?: string }) =>
      api('POST', `/billing/accounts/${encodeURIComponent(tenant.id)}/${kind}`, {
        amount: v.amount.trim(),
        ...(v.reference ? { reference: v.reference } : {}),
        idempotencyKey: key,
      }),
    {
      invalidate: [['billing', 'accounts', tenant.id]],
      success: kind === 'top-ups' ? t('accounts.toppedUp') : t('accounts.credited'),
      onSuccess: onClose,
    },
  );
  const title = kind === 'top-ups' ? t('accounts.topUpTitle', { name: tenant.name }) : t('accounts.creditTitle', { name: tenant.name });
  return (
    <Modal open title={title} onCancel={onClose} onOk={() => form.submit()} okText={kind === 'top-ups' ? t('accounts.topUp') : t('accounts.grantCredit')} cancelText={t('common.cancel')} confirmLoading={add.isPending}>
      <Typography.Paragraph type="secondary">{kind === 'top-ups' ? t('accounts.topUpHint') : t('accounts.creditHint')}</Typography.Paragraph>
      <Form form={form} layout="vertical" onFinish={(v) => add.mutate(v)}>
        <Form.Item
          label={t('budgets.amountIn', { currency })}
          name="amount"
          rules={[
            { required: true, message: t('validation.required') },
            {
              validator: async (_, v: string) => {
                const m = v ? parseDecimalMicros(v) : null;
                if (v && (m === null || m <= 0n)) throw new Error(t('budgets.badAmount'));
              },
            },
          ]}
        >
          <Input inputMode="decimal" placeholder="100.00" autoComplete="off" />
        </Form.Item>
        <Form.Item label={t('accounts.reference')} name="reference" rules={[{ max: 200 }]}>
          <Input autoComplete="off" placeholder={t('accounts.referenceHint')} />
        </Form.Item>
      </Form>
    </Modal>
  );
}

/** A tenant's billing account (platform admins): balance, credits, policy status, top up, grant credit. */
export function BillingAccountsPage() {
  const { t } = useTranslation();
  const [params, setParams] = useSearchParams();
  const [search, setSearch] = useState('');
  const [funds, setFunds] = useState<'top-ups' | 'credits' | null>(null);
  const tenants = useQuery({
    queryKey: ['tenants', 'pick', search],
    queryFn: () => get<Page<Tenant>>(`/tenants${qs({ limit: 50, search: search || undefined })}`),
  });
  const tenantId = params.get('tenant') ?? '';
  const chosen = useQuery({
    queryKey: ['tenants', 'one', tenantId],
    queryFn: () => get<Tenant>(`/tenants/${encodeURIComponent(tenantId)}`),
    enabled: !!tenantId,
  });
  const account = useQuery({
    queryKey: ['billing', 'accounts', tenantId],
    queryFn: () => get<BillingAccountDetail>(`/billing/account${qs({ tenantId })}`),
    enabled: !!tenantId,
  });
  const setMode = useAction((mode: 'prepaid' | 'postpaid') => api('PUT', `/billing/accounts/${encodeURIComponent(tenantId)}`, { mode }), {
    invalidate: [['billing', 'accounts', tenantId]],
    success: t('common.saved'),
  });
  const a = account.data;
  const tenant = chosen.data;
  const options = [...(tenants.data?.items ?? [])];
  if (tenant && !options.some((x) => x.id === tenant.id)) options.unshift(tenant);
  return (
    <>
      <PageTitle title={t('nav.billingAccounts')} />
      <Space wrap style={{ marginBottom: 16 }}>
        <Select
          showSearch
          filterOption={false}
          onSearch={setSearch}
          style={{ width: 320 }}
          placeholder={t('accounts.pickTenant')}
          aria-label={t('accounts.pickTenant')}
          data-testid="account-tenant"
          loading={tenants.isLoading}
          value={tenantId || undefined}
          onChange={(id: string) => setParams({ tenant: id })}
          options={options.map((x) => ({ value: x.id, label: `${x.name} (${x.displayName})` }))}
          notFoundContent={t('common.empty')}
        />
        {a && tenant ? (
          <>
            <Button type="primary" onClick={() => setFunds('top-ups')}>
              {t('accounts.topUp')}
            </Button>
            <Button onClick={() => setFunds('credits')}>{t('accounts.grantCredit')}</Button>
            <Popconfirm
              title={t('accounts.confirmMode', { mode: t(`billing.mode.${a.mode === 'prepaid' ? 'postpaid' : 'prepaid'}`) })}
              onConfirm={() => setMode.mutate(a.mode === 'prepaid' ? 'postpaid' : 'prepaid')}
              okText={t('common.yes')}
              cancelText={t('common.no')}
            >
              <Button loading={setMode.isPending}>
                {a.mode === 'prepaid' ? t('accounts.makePostpaid') : t('accounts.makePrepaid')}
              </Button>
            </Popconfirm>
          </>
        ) : null}
      </Space>
      <QueryError error={tenants.error ?? chosen.error ?? account.error} />
      {!tenantId ? (
        <Empty description={t('accounts.pickTenantHint')} />
      ) : account.isLoading ? (
        <Skeleton active />
      ) : a ? (
        <Space direction="vertical" size={16} style={{ width: '100%' }}>
          <Row gutter={[16, 16]}>
            <Col xs={24} sm={12} lg={6}>
              <Card>
                <Statistic title={t('accounts.balance')} value={money(a.balanceMicros, a.currency)} valueStyle={{ fontSize: 20 }} />
                <span data-testid="account-balance" style={{ display: 'none' }}>
                  {a.balanceMicros}
                </span>
              </Card>
            </Col>
            <Col xs={24} sm={12} lg={6}>
              <Card>
                <Statistic title={t('accounts.credits')} value={money(a.creditMicros, a.currency)} valueStyle={{ fontSize: 20 }} />
              </Card>
            </Col>
            <Col xs={24} sm={12} lg={6}>
              <Card>
                <Statistic title={t('billing.available')} value={money(a.availableMicros, a.currency)} valueStyle={{ fontSize: 20 }} />
              </Card>
            </Col>
            <Col xs={24} sm={12} lg={6}>
              <Card>
                <Statistic title={t('accounts.unbilledUnpaid')} value={money(a.unbilledMicros + a.unpaidMicros, a.currency)} valueStyle={{ fontSize: 20 }} />
              </Card>
            </Col>
          </Row>
          <Card>
            <Descriptions column={{ xs: 1, sm: 2, lg: 3 }} size="small">
              <Descriptions.Item label={t('invoices.tenant')}>{tenant ? `${tenant.name} (${tenant.id})` : tenantId}</Descriptions.Item>
              <Descriptions.Item label={t('accounts.mode')}>
                <Tag>{t(`billing.mode.${a.mode}`, { defaultValue: a.mode })}</Tag>
              </Descriptions.Item>
              <Descriptions.Item label={t('accounts.policyStatus')}>
                <Tag color={STATUS_COLOR[a.status] ?? 'default'} data-testid="account-status">
                  {t(`billing.status.${a.status}`, { defaultValue: a.status })}
                </Tag>
                <Typography.Text type="secondary">{t('accounts.since', { time: formatTime(a.statusSince) })}</Typography.Text>
              </Descriptions.Item>
              <Descriptions.Item label={t('accounts.unbilled')}>{money(a.unbilledMicros, a.currency)}</Descriptions.Item>
              <Descriptions.Item label={t('accounts.unpaid')}>{money(a.unpaidMicros, a.currency)}</Descriptions.Item>
            </Descriptions>
          </Card>
          <Card title={t('accounts.transactions')}>
            <Table
              size="middle"
              scroll={{ x: 'max-content' }}
              rowKey="id"
              dataSource={a.recentTransactions}
              pagination={{ pageSize: 10, hideOnSinglePage: true }}
              locale={{ emptyText: <Empty description={t('accounts.noTransactions')} /> }}
              columns={[
                { title: t('notifications.time'), dataIndex: 'createdAt', render: formatTime },
                { title: t('accounts.kind'), dataIndex: 'kind', render: (k: string) => <Tag>{t(`accounts.kinds.${k}`, { defaultValue: k })}</Tag> },
                { title: t('billing.amount'), dataIndex: 'amountMicros', align: 'right', render: (v: number) => money(v, a.currency) },
                { title: t('accounts.reference'), dataIndex: 'reference', render: (v: string | null) => v ?? '-' },
                { title: t('accounts.by'), dataIndex: 'createdBy', responsive: ['md'] },
              ]}
            />
          </Card>
        </Space>
      ) : null}
      {funds && tenant && a ? <FundsModal tenant={tenant} kind={funds} currency={a.currency} onClose={() => setFunds(null)} /> : null}
    </>
  );
}

/** Platform billing settings: the currency (fixed at install) and the tax rate for new invoices. */
export function BillingSettingsPage() {
  const { t } = useTranslation();
  const q = useQuery({ queryKey: ['billing', 'settings'], queryFn: () => get<BillingSettings>('/billing/settings') });
  const [form] = Form.useForm<{ taxPercent: number }>();
  const save = useAction(
    (v: { taxPercent: number }) => api('PUT', '/billing/settings', { taxRatePpm: Math.round(v.taxPercent * 10_000) }),
    { invalidate: [['billing', 'settings']], success: t('common.saved') },
  );
  return (
    <>
      <PageTitle title={t('nav.billingSettings')} />
      <QueryError error={q.error} />
      {q.isLoading ? (
        <Skeleton active />
      ) : q.data ? (
        <Card style={{ maxWidth: 560 }}>
          <Descriptions column={1} size="small" style={{ marginBottom: 16 }}>
            <Descriptions.Item label={t('invoices.currency')}>{q.data.currency}</Descriptions.Item>
            <Descriptions.Item label={t('settings.currentTax')}>
              <span data-testid="tax-rate">{`${q.data.taxRatePpm / 10_000}%`}</span>
            </Descriptions.Item>
          </Descriptions>
          <Form form={form} layout="vertical" initialValues={{ taxPercent: q.data.taxRatePpm / 10_000 }} onFinish={(v) => save.mutate(v)}>
            <Form.Item label={t('settings.taxRate')} name="taxPercent" extra={t('settings.taxHint')} rules={[{ required: true, message: t('validation.required') }]}>
              <InputNumber min={0} max={100} step={0.5} precision={4} addonAfter="%" style={{ width: 200 }} />
            </Form.Item>
            <Popconfirm title={t('settings.confirmTax')} onConfirm={() => form.submit()} okText={t('common.yes')} cancelText={t('common.no')}>
              <Button type="primary" loading={save.isPending}>
                {t('common.save')}
              </Button>
            </Popconfirm>
          </Form>
        </Card>
      ) : null}
    </>
  );
}
