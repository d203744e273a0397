import { PlusOutlined } from '@ant-design/icons';
import { Alert, Button, Descriptions, Modal, Popconfirm, Space, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { type AccessKey, api, get, type Page, qs } from '../api';
import { CursorTable, formatTime, PageTitle, stateColor, useAction } from '../components';

export function AccessKeysPage() {
  const { t } = useTranslation();
  const [secret, setSecret] = useState<AccessKey | null>(null);
  const create = useAction(() => api<AccessKey>('POST', '/users/me/access-keys'), {
    invalidate: [['access-keys']],
    success: t('keys.created'),
    onSuccess: (k) => setSecret(k),
  });
  const toggle = useAction((k: AccessKey) => api('PATCH', `/access-keys/${k.accessKeyId}`, { status: k.status === 'Active' ? 'Inactive' : 'Active' }), {
    invalidate: [['access-keys']],
    success: t('common.saved'),
  });
  const del = useAction((id: string) => api('DELETE', `/access-keys/${id}`), { invalidate: [['access-keys']], success: t('keys.revoked') });
  return (
    <>
      <PageTitle
        title={t('nav.accessKeys')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => create.mutate(undefined)} loading={create.isPending}>
            {t('keys.create')}
          </Button>
        }
      />
      <Typography.Paragraph type="secondary">{t('keys.intro')}</Typography.Paragraph>
      <CursorTable<AccessKey>
        queryKey={['access-keys']}
        fetch={(cursor, limit) => get<Page<AccessKey>>(`/users/me/access-keys${qs({ cursor, limit })}`)}
        rowKey="accessKeyId"
        filterText={(k) => k.accessKeyId}
        emptyText={t('keys.empty')}
        columns={[
          { title: t('keys.id'), dataIndex: 'accessKeyId', render: (v: string) => <span className="yh-mono">{v}</span> },
          { title: t('keys.status'), dataIndex: 'status', render: (s: string) => <Tag color={stateColor[s]}>{t(`keys.${s}`)}</Tag> },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime },
          { title: t('keys.lastUsed'), dataIndex: 'lastUsedAt', render: formatTime, responsive: ['md'] },
          {
            title: t('common.actions'),
            render: (_, k) => (
              <Space size="small" wrap>
                <Button size="small" onClick={() => toggle.mutate(k)}>
                  {k.status === 'Active' ? t('keys.deactivate') : t('keys.activate')}
                </Button>
                <Popconfirm title={t('keys.confirmRevoke', { id: k.accessKeyId })} onConfirm={() => del.mutate(k.accessKeyId)} okText={t('keys.revoke')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                  <Button size="small" danger>
                    {t('keys.revoke')}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <Modal
        open={!!secret}
        title={t('keys.newKey')}
        closable={false}
        maskClosable={false}
        footer={
          <Button type="primary" onClick={() => setSecret(null)}>
            {t('keys.savedIt')}
          </Button>
        }
      >
        <Alert type="warning" showIcon message={t('keys.shownOnce')} style={{ marginBottom: 12 }} />
        <Descriptions column={1} bordered size="small">
          <Descriptions.Item label={t('keys.id')}>
            <Typography.Text copyable className="yh-mono">
              {secret?.accessKeyId}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('keys.secret')}>
            <Typography.Text copyable className="yh-mono" data-testid="secret">
              {secret?.secretAccessKey}
            </Typography.Text>
          </Descriptions.Item>
        </Descriptions>
      </Modal>
    </>
  );
}
