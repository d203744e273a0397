import { MinusCircleOutlined, PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Card, DatePicker, Form, Input, InputNumber, Modal, Select, Space, Table, Tag, Typography } from 'antd';
import type { Dayjs } from 'dayjs';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type MeterDef, type RateCard, type RateCardPrice } from '../../api';
import { formatTime, PageTitle, QueryError, useAction } from '../../components';
import { formatMicros, parseDecimalMicros } from '../Billing';
import { meterLabel } from '../Usage';

interface TierForm {
  upToUnits?: number | null;
  price: string;
}
interface PriceForm {
  meter: string;
  freeUnits?: number | null;
  tiers: TierForm[];
}

const tierText = (p: RateCardPrice, currency: string, t: (k: string, o?: Record<string, unknown>) => string) =>
  p.tiers
    .map((tier, i) => {
      const price = `${formatMicros(tier.unitPriceMicros, currency)} ${currency} / ${p.unit}`;
      if (p.tiers.length === 1) return price;
      const from = i === 0 ? 0 : p.tiers[i - 1]!.upToUnits;
      return tier.upToUnits === null ? t('rateCards.tierAbove', { from, price }) : t('rateCards.tierUpTo', { to: tier.upToUnits, price });
    })
    .join('; ');

function PricesTable({ card }: { card: RateCard }) {
  const { t } = useTranslation();
  return (
    <Table<RateCardPrice>
      size="small"
      pagination={false}
      rowKey="meter"
      dataSource={card.prices}
      scroll={{ x: 'max-content' }}
      columns={[
        { title: t('invoices.meter'), dataIndex: 'meter', render: (m: string) => <span title={m}>{meterLabel(t, m.replace(/:\*$/, ''))}{m.endsWith(':*') ? ' (*)' : ''}</span> },
        { title: t('rateCards.price'), render: (_, p) => tierText(p, card.currency, t) },
        { title: t('rateCards.freeUnits'), dataIndex: 'freeUnits', render: (v: number, p) => (v ? `${v} ${p.unit}` : '-') },
      ]}
    />
  );
}

/** Rate card versions (default card and tenant overrides), their prices, and new versions. */
export function RateCardsPage() {
  const { t } = useTranslation();
  const [viewing, setViewing] = useState<RateCard | null>(null);
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm();
  const cards = useQuery({ queryKey: ['billing', 'rate-cards'], queryFn: () => get<{ items: RateCard[] }>('/billing/rate-cards') });
  const meters = useQuery({ queryKey: ['billing', 'meters'], queryFn: () => get<{ items: MeterDef[] }>('/billing/meters') });
  const create = useAction((body: Record<string, unknown>) => api<RateCard>('POST', '/billing/rate-cards', body), {
    invalidate: [['billing', 'rate-cards']],
    success: t('rateCards.created'),
    onSuccess: () => {
      setCreating(false);
      form.resetFields();
    },
  });
  const items = cards.data?.items ?? [];
  const latestDefault = items.find((c) => c.tenantId === null);
  const currency = latestDefault?.currency ?? '';

  const startCreate = () => {
    // Start from the newest default version's prices, in decimal currency units.
    form.setFieldsValue({
      name: '',
      tenantId: '',
      effectiveFrom: null,
      prices: (latestDefault?.prices ?? []).map<PriceForm>((p) => ({
        meter: p.meter,
        freeUnits: p.freeUnits || null,
        tiers: p.tiers.map((tier) => ({ upToUnits: tier.upToUnits, price: formatMicros(tier.unitPriceMicros).replace(/,/g, '') })),
      })),
    });
    setCreating(true);
  };

  const submit = (v: { name: string; tenantId?: string; effectiveFrom?: Dayjs | null; prices?: PriceForm[] }) => {
    const prices = (v.prices ?? []).map((p) => ({
      meter: p.meter,
      ...(p.freeUnits ? { freeUnits: p.freeUnits } : {}),
      tiers: p.tiers.map((tier, i) => ({
        upToUnits: i === p.tiers.length - 1 ? null : (tier.upToUnits ?? null),
        unitPriceMicros: Number(parseDecimalMicros(tier.price)),
      })),
    }));
    create.mutate({
      name: v.name,
      ...(v.tenantId ? { tenantId: v.tenantId } : {}),
      ...(v.effectiveFrom ? { effectiveFrom: v.effectiveFrom.toISOString() } : {}),
      prices,
    });
  };

  const meterOptions = (meters.data?.items ?? []).map((m) => ({
    value: m.meter,
    label: `${meterLabel(t, m.meter.replace(/:\*$/, ''))}${m.meter.endsWith(':*') ? ' (*)' : ''} — ${t('rateCards.per', { unit: m.priceUnit })}`,
  }));

  return (
    <>
      <PageTitle
        title={t('nav.rateCards')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={startCreate} disabled={!cards.data}>
            {t('rateCards.create')}
          </Button>
        }
      />
      <QueryError error={cards.error ?? meters.error} />
      <Table<RateCard>
        size="middle"
        loading={cards.isLoading}
        rowKey="id"
        dataSource={items}
        pagination={false}
        scroll={{ x: 'max-content' }}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('rateCards.scope'), dataIndex: 'tenantId', render: (v: string | null) => (v ? <Tag>{v}</Tag> : <Tag color="blue">{t('rateCards.default')}</Tag>) },
          { title: t('rateCards.version'), dataIndex: 'version' },
          { title: t('rateCards.effectiveFrom'), dataIndex: 'effectiveFrom', render: formatTime },
          { title: t('invoices.currency'), dataIndex: 'currency' },
          { title: t('rateCards.prices'), render: (_, c) => c.prices.length },
          { title: t('rateCards.createdBy'), dataIndex: 'createdBy', responsive: ['md'] },
          {
            title: t('common.actions'),
            render: (_, c) => (
              <Button size="small" onClick={() => setViewing(c)}>
                {t('rateCards.view')}
              </Button>
            ),
          },
        ]}
      />
      <Modal
        open={!!viewing}
        width={860}
        title={viewing ? t('rateCards.viewTitle', { name: viewing.name, version: viewing.version }) : ''}
        onCancel={() => setViewing(null)}
        footer={<Button onClick={() => setViewing(null)}>{t('common.close')}</Button>}
      >
        {viewing ? <PricesTable card={viewing} /> : null}
      </Modal>
      <Modal
        open={creating}
        width={900}
        title={t('rateCards.create')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('common.create')}
        cancelText={t('common.cancel')}
        confirmLoading={create.isPending}
      >
        <Typography.Paragraph type="secondary">{t('rateCards.createHint', { currency })}</Typography.Paragraph>
        <Form form={form} layout="vertical" onFinish={submit}>
          <Space wrap align="start">
            <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }]}>
              <Input style={{ width: 220 }} />
            </Form.Item>
            <Form.Item label={t('rateCards.tenantId')} name="tenantId" extra={t('rateCards.tenantHint')}>
              <Input style={{ width: 220 }} />
            </Form.Item>
            <Form.Item label={t('rateCards.effectiveFrom')} name="effectiveFrom" extra={t('rateCards.effectiveHint')}>
              <DatePicker showTime />
            </Form.Item>
          </Space>
          <Form.List name="prices">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field) => (
                  <Card
                    key={field.key}
                    size="small"
                    style={{ marginBottom: 8 }}
                    extra={<MinusCircleOutlined aria-label={t('common.delete')} onClick={() => remove(field.name)} />}
                    title={
                      <Form.Item name={[field.name, 'meter']} rules={[{ required: true, message: t('validation.required') }]} style={{ margin: 0 }}>
                        <Select showSearch options={meterOptions} placeholder={t('invoices.meter')} style={{ width: 420 }} aria-label={t('invoices.meter')} />
                      </Form.Item>
                    }
                  >
                    <Form.Item label={t('rateCards.freeUnits')} name={[field.name, 'freeUnits']}>
                      <InputNumber min={0} precision={0} />
                    </Form.Item>
                    <Form.List name={[field.name, 'tiers']}>
                      {(tiers, tierOps) => (
                        <>
                          {tiers.map((tier, i) => (
                            <Space key={tier.key} align="baseline" wrap>
                              <Form.Item
                                label={i === 0 ? t('rateCards.unitPrice', { currency }) : undefined}
                                name={[tier.name, 'price']}
                                rules={[
                                  { required: true, message: t('validation.required') },
                                  { validator: async (_, v: string) => { if (v && parseDecimalMicros(v) === null) throw new Error(t('rateCards.badPrice')); } },
                                ]}
                              >
                                <Input style={{ width: 160 }} placeholder="0.12" />
                              </Form.Item>
                              <Form.Item label={i === 0 ? t('rateCards.upTo') : undefined} name={[tier.name, 'upToUnits']} extra={i === tiers.length - 1 ? t('rateCards.lastTier') : undefined}>
                                <InputNumber min={1} precision={0} disabled={i === tiers.length - 1} />
                              </Form.Item>
                              {tiers.length > 1 ? <MinusCircleOutlined aria-label={t('common.delete')} onClick={() => tierOps.remove(tier.name)} /> : null}
                            </Space>
                          ))}
                          <Button size="small" onClick={() => tierOps.add({ price: '' }, tiers.length > 0 ? tiers.length - 1 : undefined)}>
                            {t('rateCards.addTier')}
                          </Button>
                        </>
                      )}
                    </Form.List>
                  </Card>
                ))}
                <Button icon={<PlusOutlined />} onClick={() => add({ tiers: [{ price: '' }] })}>
                  {t('rateCards.addPrice')}
                </Button>
              </>
            )}
          </Form.List>
        </Form>
      </Modal>
    </>
  );
}
