import { PlusOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { AutoComplete, Button, Form, Input, InputNumber, Modal, Popconfirm, Select, Space, Steps, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router-dom';
import { api, type Flavor, get, type Image, type Instance, type KeyPair, type Page, qs, type ServerGroup, type Zone } from '../api';
import { useAuth } from '../auth';
import { CursorTable, formatBytes, formatTime, PageTitle, stateColor, useAction } from '../components';

export const INSTANCE_STATES = ['building', 'running', 'stopping', 'stopped', 'starting', 'rebooting', 'resizing', 'deleting', 'error'];

/** Start/stop/reboot/delete (with confirmation) and resize for one instance. */
export function InstanceActions({ inst, onDeleted }: { inst: Instance; onDeleted?: () => void }) {
  const { t } = useTranslation();
  const [resizing, setResizing] = useState(false);
  const inv = { invalidate: [['instances']] };
  const act = useAction((a: string) => api('POST', `/instances/${inst.id}/${a}`), {
    ...inv,
    success: t('instances.actionSent'),
  });
  const del = useAction(() => api('DELETE', `/instances/${inst.id}`), {
    ...inv,
    success: t('instances.deleting'),
    onSuccess: () => onDeleted?.(),
  });
  const busy = act.isPending || del.isPending;
  return (
    <Space wrap size="small">
      {inst.state === 'stopped' || inst.state === 'error' ? (
        <Button size="small" onClick={() => act.mutate('start')} disabled={busy}>
          {t('instances.start')}
        </Button>
      ) : null}
      {inst.state === 'running' ? (
        <>
          <Popconfirm title={t('instances.confirmStop', { name: inst.name })} onConfirm={() => act.mutate('stop')} okText={t('common.yes')} cancelText={t('common.no')}>
            <Button size="small" disabled={busy}>
              {t('instances.stop')}
            </Button>
          </Popconfirm>
          <Popconfirm title={t('instances.confirmReboot', { name: inst.name })} onConfirm={() => act.mutate('reboot')} okText={t('common.yes')} cancelText={t('common.no')}>
            <Button size="small" disabled={busy}>
              {t('instances.reboot')}
            </Button>
          </Popconfirm>
        </>
      ) : null}
      {inst.state === 'running' || inst.state === 'stopped' ? (
        <Button size="small" onClick={() => setResizing(true)} disabled={busy}>
          {t('instances.resize')}
        </Button>
      ) : null}
      {inst.state !== 'deleting' ? (
        <Popconfirm title={t('instances.confirmDelete', { name: inst.name })} onConfirm={() => del.mutate()} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
          <Button size="small" danger disabled={busy}>
            {t('common.delete')}
          </Button>
        </Popconfirm>
      ) : null}
      {resizing ? <ResizeModal inst={inst} onClose={() => setResizing(false)} /> : null}
    </Space>
  );
}

function ResizeModal({ inst, onClose }: { inst: Instance; onClose: () => void }) {
  const { t } = useTranslation();
  const live = inst.state === 'running';
  const flavors = useQuery({ queryKey: ['flavors'], queryFn: () => get<Page<Flavor>>('/flavors?limit=1000'), enabled: !live });
  const [form] = Form.useForm();
  const resize = useAction((body: Record<string, unknown>) => api('POST', `/instances/${inst.id}/resize`, body), {
    invalidate: [['instances']],
    success: t('instances.resizeSent'),
    onSuccess: onClose,
  });
  return (
    <Modal
      open
      title={t('instances.resizeTitle', { name: inst.name })}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t('instances.resize')}
      cancelText={t('common.cancel')}
      confirmLoading={resize.isPending}
    >
      <Typography.Paragraph type="secondary">{live ? t('instances.resizeLiveHint', { vcpus: inst.maxVcpus, mem: inst.maxMemoryMiB }) : t('instances.resizeColdHint')}</Typography.Paragraph>
      <Form
        form={form}
        layout="vertical"
        initialValues={{ vcpus: inst.vcpus, memoryMiB: inst.memoryMiB, flavor: inst.flavorId }}
        onFinish={(v) => resize.mutate(live ? { vcpus: v.vcpus, memoryMiB: v.memoryMiB } : { flavor: v.flavor })}
      >
        {live ? (
          <>
            <Form.Item label={t('instances.vcpus')} name="vcpus" rules={[{ required: true }]}>
              <InputNumber min={1} max={inst.maxVcpus} />
            </Form.Item>
            <Form.Item label={t('instances.memoryMiB')} name="memoryMiB" rules={[{ required: true }]}>
              <InputNumber min={128} max={inst.maxMemoryMiB} step={128} />
            </Form.Item>
          </>
        ) : (
          <Form.Item label={t('instances.flavor')} name="flavor" rules={[{ required: true }]}>
            <Select
              loading={flavors.isLoading}
              options={(flavors.data?.items ?? []).map((f) => ({ value: f.id, label: `${f.name} (${f.vcpus} vCPU, ${f.memoryMiB} MiB)` }))}
            />
          </Form.Item>
        )}
      </Form>
    </Modal>
  );
}

function LaunchWizard({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation();
  const nav = useNavigate();
  const [step, setStep] = useState(0);
  const [form] = Form.useForm();
  const images = useQuery({ queryKey: ['images', 'available'], queryFn: () => get<Page<Image>>('/images?status=available&limit=1000') });
  const flavors = useQuery({ queryKey: ['flavors'], queryFn: () => get<Page<Flavor>>('/flavors?limit=1000') });
  const keys = useQuery({ queryKey: ['key-pairs'], queryFn: () => get<Page<KeyPair>>('/key-pairs?limit=1000') });
  const groups = useQuery({ queryKey: ['server-groups', 'all'], queryFn: () => get<Page<ServerGroup>>('/server-groups') });
  const { isAdmin } = useAuth();
  // Zones are listed to platform admins; others type a zone's name (or leave it to the scheduler).
  const zones = useQuery({ queryKey: ['zones', 'names'], queryFn: () => get<{ items: Zone[] }>('/availability-zones'), enabled: isAdmin });
  const launch = useAction((body: Record<string, unknown>) => api<Instance>('POST', '/instances', body), {
    invalidate: [['instances']],
    success: t('instances.launched'),
    onSuccess: (i) => {
      onClose();
      nav(`/instances/${i.id}`);
    },
  });
  const fields = [['image'], ['flavor'], ['name']];
  const next = async () => {
    await form.validateFields(fields[step]);
    if (step < 2) return setStep(step + 1);
    // Every field of every step (validateFields answers only the ones it checked).
    const all = form.getFieldsValue(true) as Record<string, string | undefined>;
    launch.mutate({
        name: all.name,
        image: all.image,
        flavor: all.flavor,
        ...(all.keyName ? { keyName: all.keyName } : {}),
        ...(all.userData ? { userData: all.userData } : {}),
        ...(all.password ? { password: all.password } : {}),
        ...(all.zone ? { zone: all.zone } : {}),
        ...(all.serverGroup ? { serverGroup: all.serverGroup } : {}),
      });
  };
  return (
    <Modal
      open
      width={720}
      title={t('instances.launch')}
      onCancel={onClose}
      footer={
        <Space>
          <Button onClick={onClose}>{t('common.cancel')}</Button>
          {step > 0 ? <Button onClick={() => setStep(step - 1)}>{t('common.back')}</Button> : null}
          <Button type="primary" onClick={next} loading={launch.isPending} data-testid="wizard-next">
            {step < 2 ? t('common.next') : t('instances.launch')}
          </Button>
        </Space>
      }
    >
      <Steps
        size="small"
        current={step}
        style={{ marginBottom: 16 }}
        items={[{ title: t('instances.image') }, { title: t('instances.flavor') }, { title: t('instances.settings') }]}
      />
      <Form form={form} layout="vertical" preserve>
        <div style={{ display: step === 0 ? 'block' : 'none' }}>
          <Form.Item label={t('instances.image')} name="image" rules={[{ required: true, message: t('validation.required') }]}>
            <Select
              showSearch
              optionFilterProp="label"
              loading={images.isLoading}
              options={(images.data?.items ?? []).map((i) => ({
                value: i.id,
                label: `${i.name} (${i.osDistro}, ${formatBytes(i.sizeBytes)}${i.visibility === 'public' ? `, ${t('images.public')}` : ''})`,
              }))}
            />
          </Form.Item>
        </div>
        <div style={{ display: step === 1 ? 'block' : 'none' }}>
          <Form.Item label={t('instances.flavor')} name="flavor" rules={[{ required: true, message: t('validation.required') }]}>
            <Select
              loading={flavors.isLoading}
              options={(flavors.data?.items ?? []).map((f) => ({
                value: f.name,
                label: `${f.name} — ${f.vcpus} vCPU, ${f.memoryMiB} MiB, ${f.diskGiB} GiB`,
              }))}
            />
          </Form.Item>
        </div>
        <div style={{ display: step === 2 ? 'block' : 'none' }}>
          <Form.Item
            label={t('common.name')}
            name="name"
            rules={[
              { required: true, message: t('validation.required') },
              { pattern: /^[a-z0-9][a-z0-9._-]{0,62}$/, message: t('validation.resourceName') },
            ]}
          >
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label={t('instances.keyPair')} name="keyName">
            <Select allowClear options={(keys.data?.items ?? []).map((k) => ({ value: k.name, label: k.name }))} />
          </Form.Item>
          <Form.Item label={t('instances.serverGroup')} name="serverGroup" extra={t('instances.serverGroupHint')}>
            <Select
              allowClear
              loading={groups.isLoading}
              options={(groups.data?.items ?? []).map((g) => ({ value: g.id, label: `${g.name} (${t(`serverGroups.policies.${g.policy}`)})` }))}
            />
          </Form.Item>
          <Form.Item
            label={t('instances.zone')}
            name="zone"
            extra={t('instances.zoneHint')}
            rules={[{ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, message: t('validation.resourceName') }]}
          >
            <AutoComplete
              allowClear
              options={(zones.data?.items ?? []).map((z) => ({ value: z.name, label: `${z.name} (${t('zones.hostCounts', { total: z.hosts, up: z.hostsUp, enabled: z.hostsEnabled })})` }))}
            />
          </Form.Item>
          <Form.Item label={t('instances.password')} name="password" extra={t('instances.passwordHint')} rules={[{ min: 8, message: t('validation.minChars', { n: 8 }) }]}>
            <Input.Password autoComplete="new-password" />
          </Form.Item>
          <Form.Item label={t('instances.userData')} name="userData" extra={t('instances.userDataHint')}>
            <Input.TextArea rows={5} className="yh-mono" placeholder="#cloud-config" />
          </Form.Item>
        </div>
      </Form>
    </Modal>
  );
}

export function InstancesPage() {
  const { t } = useTranslation();
  const [launching, setLaunching] = useState(false);
  const [state, setState] = useState<string | undefined>();
  return (
    <>
      <PageTitle
        title={t('nav.instances')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setLaunching(true)}>
            {t('instances.launch')}
          </Button>
        }
      />
      <CursorTable<Instance>
        queryKey={['instances', 'list', state ?? '']}
        fetch={(cursor, limit) => get<Page<Instance>>(`/instances${qs({ cursor, limit, state })}`)}
        refetchInterval={3000}
        rowKey="id"
        filterText={(i) => `${i.name} ${i.id} ${i.state}`}
        emptyText={t('instances.empty')}
        toolbar={
          <Select
            allowClear
            placeholder={t('instances.state')}
            aria-label={t('instances.state')}
            style={{ width: 160 }}
            value={state}
            onChange={setState}
            options={INSTANCE_STATES.map((s) => ({ value: s, label: t(`states.${s}`) }))}
          />
        }
        columns={[
          { title: t('common.name'), dataIndex: 'name', render: (_, i) => <Link to={`/instances/${i.id}`}>{i.name}</Link> },
          { title: t('instances.state'), dataIndex: 'state', render: (s: string, i) => <Tag color={stateColor[s]} data-testid={`state-${i.name}`}>{t(`states.${s}`, { defaultValue: s })}</Tag> },
          { title: t('instances.size'), render: (_, i) => `${i.vcpus} vCPU / ${i.memoryMiB} MiB / ${i.diskGiB} GiB` },
          { title: t('common.id'), dataIndex: 'id', responsive: ['md'] },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
          { title: t('common.actions'), render: (_, i) => <InstanceActions inst={i} /> },
        ]}
      />
      {launching ? <LaunchWizard onClose={() => setLaunching(false)} /> : null}
    </>
  );
}
